import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

/// Options every `image` subcommand shares.
struct ImageStoreOptions: ParsableArguments {
    /// `--root`: the host root the store lives under (tests, chroots; default `RUNNER_HOST_ROOT`, else /).
    @OptionGroup var host: HostRootOptions

    /// The store, shifting imports into the guests' UID range unless config.env says
    /// `RUNNER_GUEST_USERNS=off` (an unreadable config: the key's default; a guest start
    /// shifts again when the setting differs).
    func store() throws(RunnerError) -> ImageStore {
        let layout = try host.layout()
        let settings = (try? HookSettings.load(layout: layout)) ?? HookSettings()
        return ImageStore(layout: layout, userNamespace: settings.guestUserNamespace ? .standard : nil)
    }
}
