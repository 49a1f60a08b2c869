import RunnerCore
import RunnerImages
import RunnerTestSupport
import Testing

/// The guests' user-namespace range: its text form and the kernel's switch.
@Suite struct GuestUserNamespaceTests {
    static let range = GuestUserNamespace.standard

    @Test func rangeParsesAndKernelSwitchIsRead() throws {
        #expect(GuestUserNamespace("2147352576:65536") == Self.range)
        #expect(GuestUserNamespace(Self.range.description) == Self.range)
        for bad in ["", "1", "a:b", "4294967295:2", "5:0"] { #expect(GuestUserNamespace(bad) == nil) }
        try withTemporaryDirectoryHelper { dir in
            try FilePaths.createDirectory(dir.appending("proc/sys/user"))
            #expect(!GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
            try AtomicFile.write("0\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            #expect(!GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
            try AtomicFile.write("15000\n", to: dir.appending("proc/sys/user/max_user_namespaces"))
            #expect(GuestUserNamespace.kernelAllows(procRoot: dir.appending("proc")))
        }
    }
}
