"""XDM: Cross-Enterprise Document Media Interchange (ITI-32 Distribute Document Set on Media), ZIP packages."""
