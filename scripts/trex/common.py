# Shared addressing for the mimamori TRex profiles. TRex port 0 faces the BOX's LAN port,
# port 1 its WAN port (the BOX is a bump in the wire). LAN hosts are 198.18.0.0/16, WAN
# servers 198.19.0.0/16 (RFC 2544 benchmarking range). Replies (direction 1) mirror the
# requests' tuples, so the stateful firewall sees every WAN->LAN packet as a reply.
LAN_HOSTS = ("198.18.0.1", "198.18.255.254")
WAN_HOSTS = ("198.19.0.1", "198.19.255.254")
CLIENT_PORT = 1025
SERVER_PORT = 5001
