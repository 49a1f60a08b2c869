import RunnerCore
import RunnerImages
import Testing

/// The store refuses bad image names, when resolving and when importing.
@Suite struct ImageStoreNameTests {
    @Test(arguments: ["", "../etc", "Upper", ".hidden", "a/b", String(repeating: "x", count: 65)])
    func badNamesAreRefused(_ name: String) async throws {
        let store = ImageStore(layout: HostLayout(root: "/nonexistent-root"))
        #expect(throws: RunnerError.self) { try store.resolve(name) }
        await #expect(throws: RunnerError.self) { try await store.importArchive("/dev/null", name: name) }
    }
}
