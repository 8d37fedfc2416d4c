"""Limnoria glue shared by the ThreatNet plugins (the only code outside plugins/ that imports supybot).

`threatnet/` stays free of IRC; anything both plugins need from Limnoria lives here once.
"""
