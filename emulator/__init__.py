"""Local Azure: an HTTPS emulator of the Azure services the image factory talks to."""
