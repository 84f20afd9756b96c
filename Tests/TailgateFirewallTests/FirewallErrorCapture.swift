import TailgateFirewall

/// The error `operation` throws, or nil when it succeeds.
func firewallError(_ operation: () throws(FirewallError) -> Void) -> FirewallError? {
    do {
        try operation()
        return nil
    } catch {
        return error
    }
}
