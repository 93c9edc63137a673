# TRex STL profile: 64-byte UDP frames over many flows (source address walks the LAN
# range), with a 1,000 pps latency stream per direction (pg_id 10 + direction).
#   ./t-rex-64 -i -c 2           then, in trex-console:
#   start -f scripts/trex/stl_64b.py -m 10mpps --port 0 1
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
from common import LAN_HOSTS, WAN_HOSTS, CLIENT_PORT, SERVER_PORT
from trex_stl_lib.api import (STLProfile, STLStream, STLPktBuilder, STLTXCont, STLScVmRaw,
                              STLVmFlowVar, STLVmWrFlowVar, STLVmFixIpv4, STLFlowLatencyStats,
                              Ether, IP, UDP)


class Stl64B:
    def stream(self, direction, frame_len, latency=False, mode=None):
        lan, wan = ("src", "dst") if direction == 0 else ("dst", "src")
        ip = IP(src="198.18.0.1", dst="198.19.0.1") if direction == 0 else IP(src="198.19.0.1", dst="198.18.0.1")
        l4 = UDP(sport=CLIENT_PORT, dport=SERVER_PORT) if direction == 0 else UDP(sport=SERVER_PORT, dport=CLIENT_PORT)
        base = Ether() / ip / l4
        pkt = base / ("x" * max(0, frame_len - 4 - len(base)))  # frame_len includes the FCS
        vm = STLScVmRaw([
            STLVmFlowVar(name="lan", min_value=LAN_HOSTS[0], max_value=LAN_HOSTS[1], size=4, op="inc"),
            STLVmWrFlowVar(fv_name="lan", pkt_offset="IP." + lan),
            STLVmFlowVar(name="wan", min_value=WAN_HOSTS[0], max_value=WAN_HOSTS[1], size=4, op="inc"),
            STLVmWrFlowVar(fv_name="wan", pkt_offset="IP." + wan),
            STLVmFixIpv4(offset="IP"),
        ])
        if latency:
            return STLStream(packet=STLPktBuilder(pkt=pkt), mode=STLTXCont(pps=1000),
                             flow_stats=STLFlowLatencyStats(pg_id=10 + direction))
        return STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=mode or STLTXCont())

    def get_streams(self, direction=0, size=64, **kwargs):
        return [self.stream(direction, size), self.stream(direction, size, latency=True)]


def register():
    return Stl64B()
