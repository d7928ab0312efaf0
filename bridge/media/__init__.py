"""Media core: RTP-level selective forwarding of the program."""
