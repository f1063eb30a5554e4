"""Replication between devices and the county server (DESIGN §3). Built in a later issue."""
