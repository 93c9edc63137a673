# TRex ASTF profile: HTTP/1.1 GETs from LAN clients to WAN servers through the BOX, real
# TCP on both ends (TRex emulates clients on port 0 and servers on port 1).
#   ./t-rex-64 --astf -f scripts/trex/astf_http.py -m 2000 -d 60 -c 2
from trex.astf.api import (ASTFProfile, ASTFProgram, ASTFIPGen, ASTFIPGenDist, ASTFIPGenGlobal,
                           ASTFTCPClientTemplate, ASTFTCPServerTemplate, ASTFTemplate)

REQUEST = (b"GET /report.html HTTP/1.1\r\nHost: www.shop1.test\r\n"
           b"User-Agent: mimamori-trex\r\nAccept: */*\r\n\r\n")
BODY = b"<html>" + b"x" * 32000 + b"</html>"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY


class AstfHttp:
    def get_profile(self, tunables=None, **kwargs):
        clients = ASTFIPGenDist(ip_range=["198.18.0.10", "198.18.3.250"], distribution="seq")
        servers = ASTFIPGenDist(ip_range=["198.19.0.1", "198.19.0.250"], distribution="seq")
        ip_gen = ASTFIPGen(glob=ASTFIPGenGlobal(ip_offset="1.0.0.0"), dist_client=clients, dist_server=servers)

        client = ASTFProgram()
        client.send(REQUEST)
        client.recv(len(RESPONSE))
        server = ASTFProgram()
        server.recv(len(REQUEST))
        server.send(RESPONSE)

        template = ASTFTemplate(
            client_template=ASTFTCPClientTemplate(program=client, ip_gen=ip_gen, port=80, cps=100),
            server_template=ASTFTCPServerTemplate(program=server),
        )
        return ASTFProfile(default_ip_gen=ip_gen, templates=template)


def register():
    return AstfHttp()
