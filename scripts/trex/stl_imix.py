# TRex STL profile: IMIX (64/594/1518-byte frames at 7:4:1 by packet count) over many
# flows, with a 1,000 pps latency stream per direction (pg_id 10 + direction).
#   start -f scripts/trex/stl_imix.py -m 5gbps --port 0 1
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
from stl_64b import Stl64B
from trex_stl_lib.api import STLTXCont

IMIX = ((64, 7), (594, 4), (1518, 1))


class StlImix(Stl64B):
    def get_streams(self, direction=0, **kwargs):
        # Rates are relative (packets per second in 7:4:1); the console's -m scales them.
        streams = [self.stream(direction, size, mode=STLTXCont(pps=weight)) for size, weight in IMIX]
        streams.append(self.stream(direction, 64, latency=True))
        return streams


def register():
    return StlImix()
