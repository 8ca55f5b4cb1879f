"""The reachlab chain scenario in ns-3: hosts at both ends of 8 routers in a line, point-to-point
links (1 Gb/s, 5 us), static routes from Ipv4GlobalRoutingHelper, 1,000 pings one second apart
from the first host to the last. Prints one JSON line: wall time of Simulator::Run, events
executed. ns-3's Ping prints its summary ("1000 packets transmitted, 1000 received") first."""

import json
import sys
import time

from ns import ns

ROUTERS = 8
PINGS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000

nodes = ns.NodeContainer()
nodes.Create(ROUTERS + 2)
ns.InternetStackHelper().Install(nodes)
p2p = ns.PointToPointHelper()
p2p.SetDeviceAttribute("DataRate", ns.StringValue("1Gbps"))
p2p.SetChannelAttribute("Delay", ns.StringValue("5us"))
address = ns.Ipv4AddressHelper()
last = None
for i in range(ROUTERS + 1):
    devices = p2p.Install(nodes.Get(i), nodes.Get(i + 1))
    address.SetBase(ns.Ipv4Address(f"10.0.{i}.0"), ns.Ipv4Mask("255.255.255.0"))
    interfaces = address.Assign(devices)
    last = interfaces.GetAddress(1)
ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()

ping = ns.PingHelper(last.ConvertTo())
ping.SetAttribute("Count", ns.UintegerValue(PINGS))
ping.SetAttribute("Interval", ns.TimeValue(ns.Seconds(1)))
ping.SetAttribute("VerboseMode", ns.StringValue("Quiet"))
apps = ping.Install(nodes.Get(0))
apps.Start(ns.Seconds(0))
apps.Stop(ns.Seconds(PINGS + 5))
ns.Simulator.Stop(ns.Seconds(PINGS + 6))
start = time.perf_counter()
ns.Simulator.Run()
seconds = time.perf_counter() - start
try:
    events = int(ns.Simulator.GetEventCount())
except Exception:  # noqa: BLE001 - older bindings
    events = None
ns.Simulator.Destroy()
sys.stdout.flush()
print(
    json.dumps(
        {
            "ns3_version": "3.44",
            "routers": ROUTERS,
            "pings": PINGS,
            "seconds": seconds,
            "events": events,
        }
    ),
    flush=True,
)
