import RunnerCore
import Testing

@testable import RunnerImages

@Suite struct OCIImageConfigTests {
    static let postgres = """
        {"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},\
        "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","GOSU_VERSION=1.17",\
        "PGDATA=/var/lib/postgresql/data","EMPTY=","NOVALUE","PGDATA=/data"],\
        "Entrypoint":["docker-entrypoint.sh"],"Cmd":["postgres"],"WorkingDir":"/","User":"",\
        "ExposedPorts":{"5432/tcp":{},"53/udp":{}},"StopSignal":"SIGINT","Volumes":{"/var/lib/postgresql/data":{}}},\
        "history":[]}
        """

    @Test func decodesTheFieldsDockerApplies() throws {
        let config = try OCIImageConfig.decode(Array(Self.postgres.utf8), input: "config.json")
        #expect(config.architecture == "amd64" && config.os == "linux")
        #expect(config.config?.entrypoint == ["docker-entrypoint.sh"])
        #expect(config.config?.cmd == ["postgres"])
        #expect(config.config?.workingDir == "/")
        #expect(config.config?.user == "")
        #expect(config.exposedTCPPorts == [5432])
    }

    @Test func environmentLaterEntriesWinAndBareNamesAreEmpty() throws {
        let config = try OCIImageConfig.decode(Array(Self.postgres.utf8), input: "config.json")
        let env = config.environment
        #expect(env["PGDATA"] == "/data")
        #expect(env["EMPTY"] == "" && env["NOVALUE"] == "")
        #expect(env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    }

    @Test func mainProcessFollowsDockerRun() {
        let config = OCIImageConfig(config: .init(entrypoint: ["/entry.sh"], cmd: ["serve", "--port", "1"]))
        #expect(config.mainProcess() == ["/entry.sh", "serve", "--port", "1"])
        // Arguments replace Cmd; an entry point replaces the image's and drops its Cmd.
        #expect(config.mainProcess(arguments: ["other"]) == ["/entry.sh", "other"])
        #expect(config.mainProcess(entrypoint: ["/bin/sh"]) == ["/bin/sh"])
        #expect(config.mainProcess(entrypoint: ["/bin/sh"], arguments: ["-c", "x"]) == ["/bin/sh", "-c", "x"])
        #expect(OCIImageConfig().mainProcess().isEmpty)
        #expect(OCIImageConfig(config: .init(cmd: ["redis-server"])).mainProcess() == ["redis-server"])
    }

    @Test func refusesWhatIsNotAConfiguration() {
        #expect(throws: RunnerError.self) { try OCIImageConfig.decode(Array("[1]".utf8), input: "x") }
        #expect(throws: RunnerError.self) {
            try OCIImageConfig.decode([UInt8](repeating: 0x20, count: OCIImageConfig.sizeLimit + 1), input: "x")
        }
        // Unknown fields and missing sections are fine.
        #expect((try? OCIImageConfig.decode(Array("{}".utf8), input: "x")) == OCIImageConfig())
    }
}
