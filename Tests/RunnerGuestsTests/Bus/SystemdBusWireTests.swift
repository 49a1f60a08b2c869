import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The D-Bus wire format the step relay speaks with a guest's systemd.
struct SystemdBusWireTests {
    let unit = StepUnit(
        unit: "rg-0123456789ab-step-7.service", argv: ["/usr/bin/env", "--", "bash", "-e", "/__w/_temp/x.sh"],
        environment: ["CI=true", "PATH=/usr/bin:/bin"], workingDirectory: "/__w/repo", runtimeMax: 2.5)

    @Test func startTransientUnitBodyIsWellFormed() throws {
        let body = unit.startTransientUnitBody()
        var reader = DBusReader(body)
        #expect(try reader.string() == "rg-0123456789ab-step-7.service")
        #expect(try reader.string() == "fail")
        // The properties and the (empty) auxiliary units take exactly the rest.
        try reader.skip("a(sv)a(sa(sv))")
        #expect(reader.offset == body.count)
    }

    @Test func propertiesAreFoundPastValuesOfOtherTypes() throws {
        var writer = DBusWriter()
        writer.array(alignment: 8) { dict in
            dict.property("ExecStart", "a(sasb)") { value in
                value.array(alignment: 8) { list in
                    list.structure { entry in
                        entry.string("/bin/true")
                        entry.array(alignment: 4) { $0.string("/bin/true") }
                        entry.bool(false)
                    }
                }
            }
            dict.property("TimeoutStopUSec", "t") { $0.uint64(5_000_000) }
            dict.property("ExecMainCode", "i") { $0.uint32(1) }
            dict.property("Result", "s") { $0.string("exit-code") }
            dict.property("ExecMainStatus", "i") { $0.uint32(UInt32(bitPattern: 3)) }
        }
        var reader = DBusReader(writer.bytes)
        let found = try reader.properties(["ExecMainCode", "ExecMainStatus", "Result"])
        #expect(found == ["ExecMainCode": "1", "ExecMainStatus": "3", "Result": "exit-code"])
        #expect(reader.offset == writer.bytes.count)
    }

    @Test func repliesAreMatchedBySerial() throws {
        // A method return for serial 9 from systemd, body "o".
        var fields = DBusWriter()
        fields.byte(UInt8(ascii: "l"))
        fields.byte(2)
        fields.byte(1)
        fields.byte(1)
        var body = DBusWriter()
        body.string("/org/freedesktop/systemd1/job/42")
        fields.uint32(UInt32(body.bytes.count))
        fields.uint32(77)
        fields.array(alignment: 8) { list in
            list.field(5, "u") { $0.uint32(9) }
            list.field(8, "g") { $0.signature("o") }
        }
        fields.align(8)
        var descriptors: [Int32] = []
        let message = try SystemdBus.parse(fields.bytes + body.bytes, descriptors: &descriptors)
        #expect(message.type == SystemdBus.Message.methodReturn)
        #expect(message.replySerial == 9)
        #expect(message.signature == "o")
        var reader = DBusReader(message.body)
        #expect(try reader.string() == "/org/freedesktop/systemd1/job/42")
    }

    @Test func truncatedMessagesAreRefused() {
        var descriptors: [Int32] = []
        #expect(throws: RunnerError.self) {
            try SystemdBus.parse([0x6c, 2, 1, 1, 0xff, 0, 0, 0], descriptors: &descriptors)
        }
    }

    @Test(arguments: [
        ("rg-0123456789ab-step-7.service", "/org/freedesktop/systemd1/unit/rg_2d0123456789ab_2dstep_2d7_2eservice"),
        ("a.b", "/org/freedesktop/systemd1/unit/a_2eb"),
    ])
    func unitObjectPaths(unit: String, path: String) {
        #expect(SystemdBus.unitPath(unit) == path)
    }

    @Test(arguments: [
        ("0 0 4294967295\n", UInt32(0)),
        ("         0 2147352576      65536\n", UInt32(2_147_352_576)),
        ("1 100000 65535\n0 4242 1\n", UInt32(4242)),
        ("1 100000 65535\n", nil),
        ("", nil),
    ])
    func guestRootIsWhatTheMapGivesZero(map: String, expected: UInt32?) {
        #expect(GuestBus.hostID(mappedToRoot: map) == expected)
    }

    @Test func theRelayIsStartedOutsideTheHelperTreeWithAFreshEnvironment() {
        let command = RelayProcess.command(
            executable: "/a/runner-agent", name: "rg-0123456789ab", uid: 1001, layoutRoot: "/",
            workOwner: (1001, 1002))
        #expect(command.argv == ["/a/runner-agent", "relay", "rg-0123456789ab", "--uid", "1001"])
        #expect(command.clearsEnvironment)
        #expect(command.environment["RUNNER_WORK_OWNER"] == "1001:1002")
        #expect(command.environment["RUNNER_HOST_ROOT"] == nil)
        #expect(!command.environment.keys.contains { $0.hasPrefix("SUDO_") })
        let test = RelayProcess.command(
            executable: "/a/runner-agent", name: "rg-0123456789ab", uid: 0, layoutRoot: "/tmp/t", workOwner: nil)
        #expect(test.environment["RUNNER_HOST_ROOT"] == "/tmp/t")
    }
}
