"""Polyv live: stream monitor info of channels on Tencent CDN."""
