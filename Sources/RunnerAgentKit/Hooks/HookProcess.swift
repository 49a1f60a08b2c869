import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// One run of the hook process (`runner-agent hook`): the runner's JSON from stdin, the settings
/// (config.env as root, else from the privileged helper, which can read it), the guests (in
/// process as root, else through `sudo -n ci-nspawn-run`), then ``ContainerHook``.
public enum HookProcess {
    /// Handles one hook call from stdin and returns the exit code.
    public static func handle() async -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let stdin = await StandardInput.read()
        let privileged = geteuid() == 0
        let layout: HostLayout
        let helper: HelperGuests
        let settings: HookSettings
        let owner = ProcessEnvironment.value("RUNNER_HOOK_OWNER_PID").flatMap(Int32.init) ?? getppid()
        var lookups: [StoreLookup]?
        do throws(RunnerError) {
            layout = try AgentHost.layout()
            helper = HelperGuests(helper: layout.guestHelper, layout: layout)
            if privileged {
                settings = try HookSettings.load(layout: layout)
            } else if let input = try? HookInput.decode(stdin), input.command == HookInput.Command.prepareJob.rawValue {
                // config.env is root's (0600, credentials): the helper reads it for us. Only
                // prepare_job needs the settings; the steps and cleanup go by the job's state.
                // The same call looks the job's registry references up in the content store.
                let references = Self.registryReferences(input)
                if references.isEmpty {
                    settings = try await helper.settings()
                } else {
                    let answer = try await helper.settings(lookingUp: references, owner: owner)
                    settings = answer.settings
                    lookups = answer.lookups
                }
            } else {
                settings = HookSettings()
            }
        } catch {
            ContainerHook.reportError(error)
            return 1
        }
        let logger = Logger(label: "runner.hook")
        let policy = AgentHost.policy(layout: layout, settings: settings)
        let guests: any GuestOperations =
            privileged ? LocalGuests(manager: GuestManager(policy: policy, logger: logger)) : helper
        let registry = lookups.map { lookups in
            PrefetchedRegistryImages(
                lookups, base: HelperRegistryImages(helper: layout.guestHelper, throughSudo: true, owner: owner))
        }
        let hook = ContainerHook(
            settings: settings, policy: policy, guests: guests, logger: logger, ownerPID: owner, registry: registry)
        return await hook.run(stdin: stdin)
    }

    /// The job's container and service images as the registry path would look them up, each
    /// once, at most ``SettingsLookupRequest/maxReferences``.
    static func registryReferences(_ input: HookInput) -> [String] {
        var references: [String] = []
        for image in [input.args.container?.image] + input.args.services.map(\.image) {
            guard let reference = ContainerHook.registryReference(image), !references.contains(reference) else {
                continue
            }
            references.append(reference)
        }
        return Array(references.prefix(SettingsLookupRequest.maxReferences))
    }
}
