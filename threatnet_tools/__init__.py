"""ThreatNet's operator tools, installed with the package as console scripts:

- ``threatnet-keygen KEYFILE``: an agent's Ed25519 signing key and the key ring line for
  listening agents (signed threat lines).
- ``threatnet-agentcert CERTFILE --account NAME``: an agent's TLS client certificate for
  SASL EXTERNAL (CertFP), and the steps that register it.
- ``threatnet-examples DIR``: the documented example configuration (conf/ of the source).
- ``tlscert``: self-signed certificates and their SHA-256 fingerprints, as InspIRCd and
  Atheme write them (also used by the local stack behind ``make run``).
"""
