"""DICOM for XDS-I.b: patient identity (BSN) in DICOM, Key Object Selection manifests, the imaging store."""
