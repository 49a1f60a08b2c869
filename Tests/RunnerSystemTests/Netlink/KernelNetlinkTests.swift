import Testing

@testable import RunnerSystem

/// The bytes of each request, against the kernel's layouts written out by hand, and the reading
/// of answers (well-formed, then hostile: every length is checked before it is used).
@Suite struct KernelNetlinkTests {
    /// A little-endian host's bytes of `value` (the CI machines are x86_64 and arm64).
    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }

    @Test func aBridgeIsCreatedAsIpDoes() {
        let message = KernelNetlink.addBridgeRequest("rnab-1")
        var expected: [UInt8] = []
        expected += Self.le(UInt32(16 + 16 + 12 + 16))  // nlmsg_len
        expected += Self.le(UInt16(16)) + Self.le(UInt16(0x600))  // RTM_NEWLINK, CREATE|EXCL
        expected += Self.le(UInt32(7)) + Self.le(UInt32(0))  // seq, pid
        expected += [0, 0] + Self.le(UInt16(0)) + Self.le(Int32(0)) + Self.le(UInt32(0)) + Self.le(UInt32(0))
        expected += Self.le(UInt16(11)) + Self.le(UInt16(3)) + Array("rnab-1".utf8) + [0, 0]  // IFLA_IFNAME, padded
        // IFLA_LINKINFO (nested) holding IFLA_INFO_KIND "bridge\0" (4 + 7, padded to 12).
        expected += Self.le(UInt16(16)) + Self.le(UInt16(18 | 0x8000))
        expected += Self.le(UInt16(11)) + Self.le(UInt16(1)) + Array("bridge".utf8) + [0, 0]
        var sent = message
        sent.sequence = 7
        #expect(sent.bytes == expected)
        #expect(sent.bytes.count % 4 == 0)
    }

    @Test func addressesRoutesAndLinksAreTheKernelsLayouts() {
        // 10.213.5.1/24 on link 9: ifaddrmsg, then IFA_LOCAL and IFA_ADDRESS in network order.
        let address = KernelNetlink.addAddressRequest(0x0AD5_0501, prefix: 24, index: 9)
        #expect(address.type == 20 && address.flags == 0x600)
        #expect(
            address.payload
                == [2, 24, 0, 0] + Self.le(Int32(9)) + Self.le(UInt16(8)) + Self.le(UInt16(2)) + [10, 213, 5, 1]
                + Self.le(UInt16(8)) + Self.le(UInt16(1)) + [10, 213, 5, 1])
        // The default route via 10.213.5.1 out of link 9, main table, boot protocol, unicast.
        let route = KernelNetlink.defaultRouteRequest(via: 0x0AD5_0501, index: 9)
        #expect(route.type == 24 && route.flags == 0x600)
        #expect(
            route.payload
                == [2, 0, 0, 0, 254, 3, 0, 1] + Self.le(UInt32(0)) + Self.le(UInt16(8)) + Self.le(UInt16(5))
                + [10, 213, 5, 1] + Self.le(UInt16(8)) + Self.le(UInt16(4)) + Self.le(Int32(9)))
        // Up: IFF_UP in both flags and change.
        let up = KernelNetlink.setUpRequest(index: 9)
        #expect(up.payload == [0, 0, 0, 0] + Self.le(Int32(9)) + Self.le(UInt32(1)) + Self.le(UInt32(1)))
        #expect(KernelNetlink.deleteLinkRequest("x").type == 17)
        #expect(KernelNetlink.linksRequest().payload.count == 16)
        #expect(KernelNetlink.addressesRequest().payload == [2, 0, 0, 0, 0, 0, 0, 0])
    }

    /// An RTM_NEWLINK answer: index 4, name "br0", IFLA_LINKINFO { IFLA_INFO_KIND "bridge" }.
    static func linkAnswer(index: Int32 = 4, name: String = "br0", sequence: UInt32 = 1) -> NetlinkMessage {
        let info = NetlinkMessage.attribute(1, string: "bridge")
        let payload =
            [0, 0, 1, 0] + le(index) + le(UInt32(0x1003)) + le(UInt32(0)) + NetlinkMessage.attribute(3, string: name)
            + NetlinkMessage.attribute(18 | 0x8000, info)
        return NetlinkMessage(type: 16, flags: 2, sequence: sequence, payload: payload)
    }

    @Test func answersAreRead() {
        let datagram =
            Self.linkAnswer().bytes + Self.linkAnswer(index: 5, name: "eth0").bytes
            + NetlinkMessage(type: 3, flags: 2, sequence: 1, payload: Self.le(Int32(0))).bytes
        let messages = NetlinkMessage.split(datagram[...])
        #expect(messages.map(\.type) == [16, 16, 3])
        #expect(KernelNetlink.link(messages[0].payload[...]) == .init(index: 4, name: "br0", kind: "bridge"))
        #expect(KernelNetlink.link(messages[1].payload[...])?.name == "eth0")
        // An address: 192.168.7.9/24 on link 5 (IFA_ADDRESS only, as on a point-to-point link).
        let address = NetlinkMessage(
            type: 20, flags: 2,
            payload: [2, 24, 0, 0] + Self.le(Int32(5)) + NetlinkMessage.attribute(1, [192, 168, 7, 9]))
        #expect(KernelNetlink.address(address.payload[...]) == .init(index: 5, address: 0xC0A8_0709, prefix: 24))
        // An IPv6 address is not an IPv4 network.
        #expect(KernelNetlink.address(([10, 64, 0, 0] + Self.le(Int32(5)))[...]) == nil)
    }

    @Test func hostileAnswersAreReadOnlyAsFarAsTheyHold() {
        let good = Self.linkAnswer().bytes
        // A message whose length runs past the datagram, or is below the header: reading stops.
        var long = good
        long.replaceSubrange(0..<4, with: Self.le(UInt32(good.count + 64)))
        #expect(NetlinkMessage.split(long[...]).isEmpty)
        var short = good
        short.replaceSubrange(0..<4, with: Self.le(UInt32(8)))
        #expect(NetlinkMessage.split((good + short)[...]).count == 1)
        #expect(NetlinkMessage.split(good.prefix(15)).isEmpty)
        // Attributes: a length past the end or below 4 ends the list, an unterminated or
        // non-UTF-8 name is taken up to what holds (or not at all).
        let attributes = NetlinkMessage.attribute(3, string: "ok") + Self.le(UInt16(200)) + Self.le(UInt16(3)) + [1, 2]
        #expect(NetlinkMessage.attributes(attributes[...]).map(\.type) == [3])
        #expect(NetlinkMessage.attributes((Self.le(UInt16(2)) + Self.le(UInt16(3)))[...]).isEmpty)
        #expect(NetlinkMessage.string([0xFF, 0xFE][...]) == nil)
        #expect(NetlinkMessage.string(Array("abc".utf8)[...]) == "abc")
        // A link answer shorter than its header, or without a name, is no link.
        #expect(KernelNetlink.link([0, 0, 1, 0][...]) == nil)
        #expect(KernelNetlink.link(([0, 0, 1, 0] + Self.le(Int32(4)) + Self.le(UInt64(0)))[...]) == nil)
        // An address of 5 bytes, or a prefix over 32, is no address.
        let odd = [2, 24, 0, 0] + Self.le(Int32(5)) + NetlinkMessage.attribute(2, [10, 0, 0, 1, 9])
        #expect(KernelNetlink.address(odd[...]) == nil)
        let wide = [2, 40, 0, 0] + Self.le(Int32(5)) + NetlinkMessage.attribute(2, [10, 0, 0, 1])
        #expect(KernelNetlink.address(wide[...]) == nil)
    }

    @Test func anErrorAnswerGivesTheErrnoAndTheKernelsReason() {
        // NLMSG_ERROR, capped (no request payload echoed) with the extended ack's message.
        let payload =
            Self.le(Int32(-17)) + NetlinkMessage(type: 16, flags: 0x605).bytes
            + NetlinkMessage.attribute(1, string: "Link already exists")
        let answer = NetlinkMessage(type: 2, flags: 0x100 | 0x200, payload: payload)
        let (code, reason) = KernelNetlink.errorAnswer(answer)
        #expect(code == 17)
        #expect(reason == "Link already exists")
        // An ack (error 0) and a short error.
        #expect(KernelNetlink.errorAnswer(NetlinkMessage(type: 2, flags: 0x100, payload: Self.le(Int32(0)))).0 == 0)
        #expect(KernelNetlink.errorAnswer(NetlinkMessage(type: 2, flags: 0, payload: [1])).0 != 0)
        // Extended ack attributes that claim more than is there are not read.
        let lying = Self.le(Int32(-1)) + NetlinkMessage(type: 16, flags: 0).bytes + Self.le(UInt16(90)) + [1, 0]
        #expect(KernelNetlink.errorAnswer(NetlinkMessage(type: 2, flags: 0x300, payload: lying)) == (1, nil))
    }

    /// NFT_MSG_GETGEN (nftables subsystem 10 << 8 | 16) with an unspecified-family nfgenmsg, and
    /// the generation of an NFT_MSG_NEWGEN answer (NFTA_GEN_ID, big-endian); anything else none.
    @Test func theNftablesGenerationIsAskedAndRead() {
        let request = KernelNetlink.generationRequest()
        #expect(request.type == 0x0A10)
        #expect(request.payload == [0, 0, 0, 0])
        let answer = NetlinkMessage(
            type: 0x0A0F, flags: 0,
            payload: [0, 0, 0, 0] + NetlinkMessage.attribute(1, [0, 0, 0x22, 0x1E])
                + NetlinkMessage.attribute(2, Self.le(UInt32(99))))
        #expect(KernelNetlink.generation(answer) == 8734)
        #expect(KernelNetlink.generation(NetlinkMessage(type: 16, flags: 0, payload: answer.payload)) == nil)
        let short = NetlinkMessage(
            type: 0x0A0F, flags: 0, payload: [0, 0, 0, 0] + NetlinkMessage.attribute(1, [1, 2]))
        #expect(KernelNetlink.generation(short) == nil)
    }
}
