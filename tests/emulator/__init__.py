"""Tests of the local Azure emulator."""
