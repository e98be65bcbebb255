"""Sample cases the demo network loads into its nodes (one JSON file per demo organisation).

Every person, organisation, company and village in these files is invented.
"""
