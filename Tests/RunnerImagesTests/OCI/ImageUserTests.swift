import RunnerCore
import Testing

@testable import RunnerImages

@Suite struct ImageUserTests {
    static let passwd = """
        root:x:0:0:root:/root:/bin/sh
        postgres:x:999:999::/var/lib/postgresql:/bin/bash
        app:x:1000:1000:App,,,:/home/app:/bin/sh
        broken line
        big:x:70000:70000::/:/bin/sh

        """
    static let group = """
        root:x:0:
        postgres:x:999:
        app:x:1000:
        docker:x:2000:app,postgres
        ssl-cert:x:101:postgres
        """

    func resolve(_ spec: String?, passwd: String? = Self.passwd) throws(RunnerError) -> ImageUser {
        try ImageUser.resolve(spec, passwd: passwd, group: Self.group, image: "img")
    }

    @Test func emptyIsRoot() throws {
        #expect(try resolve(nil) == ImageUser(uid: 0, gid: 0, groups: [], home: "/root"))
        #expect(try resolve("  ") == ImageUser(uid: 0, gid: 0, groups: [], home: "/root"))
        // Even when the image's passwd cannot be read.
        #expect(try resolve("", passwd: nil) == ImageUser(uid: 0, gid: 0, groups: [], home: "/root"))
    }

    @Test func aNameTakesItsIdsHomeAndGroups() throws {
        #expect(
            try resolve("postgres") == ImageUser(uid: 999, gid: 999, groups: [2000, 101], home: "/var/lib/postgresql"))
        #expect(try resolve("app") == ImageUser(uid: 1000, gid: 1000, groups: [2000], home: "/home/app"))
    }

    @Test func numericIdsNeedNoEntry() throws {
        #expect(try resolve("1000") == ImageUser(uid: 1000, gid: 1000, groups: [2000], home: "/home/app"))
        #expect(try resolve("4321") == ImageUser(uid: 4321, gid: 0, groups: [], home: "/"))
        #expect(try resolve("4321:55") == ImageUser(uid: 4321, gid: 55, groups: [], home: "/"))
        // No passwd at all: numeric ids still work (docker's behaviour for scratch images).
        #expect(try resolve("10:20", passwd: nil) == ImageUser(uid: 10, gid: 20, groups: [], home: "/"))
    }

    @Test func aGroupByNameOrNumberReplacesThePrimaryAndDropsSupplementary() throws {
        #expect(try resolve("app:docker") == ImageUser(uid: 1000, gid: 2000, groups: [], home: "/home/app"))
        #expect(try resolve("postgres:7") == ImageUser(uid: 999, gid: 7, groups: [], home: "/var/lib/postgresql"))
    }

    @Test func refusals() {
        #expect(throws: RunnerError.self) { try resolve("nobody-here") }
        #expect(throws: RunnerError.self) { try resolve("app:nogroup") }
        #expect(throws: RunnerError.self) { try resolve("big") }  // outside the guest's 65,536 ids
        #expect(throws: RunnerError.self) { try resolve("70000") }
        // A name with no readable passwd (missing, or a link the host refused to follow).
        do {
            _ = try resolve("app", passwd: nil)
            Issue.record("expected a refusal")
        } catch {
            #expect(error.problem.contains("cannot be read safely"))
            #expect(error.input == "img USER app")
        }
    }
}
