"""ThreatNet's operator tools, installed with the package and run as modules:

- ``python -m threatnet_tools.keygen KEYFILE``: an agent's Ed25519 signing key and the key
  ring line for listening agents (signed threat lines).
- ``python -m threatnet_tools.agentcert CERTFILE --account NAME``: an agent's TLS client
  certificate for SASL EXTERNAL (CertFP), and the steps that register it.
- ``tlscert``: self-signed certificates and their SHA-256 fingerprints, as InspIRCd and
  Atheme write them (also used by the local stack behind ``make run``).
"""
