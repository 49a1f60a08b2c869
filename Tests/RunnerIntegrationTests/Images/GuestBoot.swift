import FoundationEssentials
import RunnerCore
import RunnerSystem
import RunnerTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A datagram socket that receives sd_notify messages (`READY=1`, `X_NSPAWN_LEADER_PID=…`).
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RunnerError.posix("socket", path, fix: nil) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: address.sun_path), "socket path too long")
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else {
            close(fd)
            throw RunnerError.posix("bind", path, fix: nil)
        }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Reads messages until one has `READY=1` or `timeout` passes; returns every key=value seen.
    func waitForReady(timeout: Double) async -> [String: String] {
        var seen: [String: String] = [:]
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline, seen["READY"] != "1" {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                for line in String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n") {
                    if let eq = line.firstIndex(of: "=") {
                        seen[String(line[..<eq])] = String(line[line.index(after: eq)...])
                    }
                }
            } else {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        return seen
    }
}

/// Typed commands the image integration tests boot and enter guests with.
enum GuestCommands {
    /// `systemd-nspawn --quiet --register=no --keep-unit -D ROOTFS --volatile=overlay -b
    /// --notify-ready=yes --console=passive [--bind-ro=…]…`, with our NOTIFY_SOCKET.
    static func boot(rootfs: String, machine: String, notifySocket: String, bindReadOnly: [String] = []) -> Command {
        Command(
            "systemd-nspawn",
            [
                "--quiet", "--register=no", "--keep-unit", "-D", rootfs, "--volatile=overlay", "-b",
                "--notify-ready=yes", "--console=passive", "--machine=\(machine)",
            ] + bindReadOnly.map { "--bind-ro=\($0)" },
            environment: ["NOTIFY_SOCKET": notifySocket])
    }

    /// `nsenter -t LEADER -a COMMAND…`.
    static func enter(leader: Int32, _ command: [String]) -> Command {
        Command("nsenter", ["-t", String(leader), "-a"] + command)
    }

    /// `nsenter -t LEADER -a systemd-run --wait --pipe --quiet COMMAND…`: a step as a real unit.
    static func step(leader: Int32, _ command: [String]) -> Command {
        enter(leader: leader, ["systemd-run", "--wait", "--pipe", "--quiet"] + command)
    }
}
