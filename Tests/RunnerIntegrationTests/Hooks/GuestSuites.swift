import Testing

/// The suites that boot guests, one at a time (they share the host's network and CPU).
@Suite(.serialized) struct GuestSuites {}
