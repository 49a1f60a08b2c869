import RunnerCore
import Testing

@testable import RunnerGuests

@Suite struct IPRouteTests {
    @Test func everyOperationsArgv() {
        let ip = IPRoute()
        #expect(ip.addBridge("rn-0a").argv == ["ip", "link", "add", "rn-0a", "type", "bridge"])
        #expect(
            ip.addAddress("10.213.0.1/24", device: "rn-0a").argv == [
                "ip", "address", "add", "10.213.0.1/24", "dev", "rn-0a",
            ])
        #expect(ip.setUp("host0").argv == ["ip", "link", "set", "host0", "up"])
        #expect(
            ip.addDefaultRoute(via: "10.213.0.1", device: "host0").argv == [
                "ip", "route", "add", "default", "via", "10.213.0.1", "dev", "host0",
            ])
        #expect(ip.deleteLink("rn-0a").argv == ["ip", "link", "delete", "rn-0a"])
        #expect(ip.listBridges().argv == ["ip", "-j", "link", "show", "type", "bridge"])
        #expect(ip.listAddresses().argv == ["ip", "-j", "address", "show"])
        #expect(ip.batch().argv == ["ip", "-batch", "-"])
        #expect(IPRoute.batchLine(ip.setUp("host0")) == "link set host0 up\n")
    }
}
