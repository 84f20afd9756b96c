import Glibc

/// The process environment, read without Foundation.
public enum SystemEnvironment {
    /// The value of `name`, if set.
    public static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The value of `name`, removed from the environment, so that a process started later does not take it
    /// for its own (as sd_listen_fds(3) unsets LISTEN_FDS).
    public static func take(_ name: String) -> String? {
        defer { unsetenv(name) }
        return value(name)
    }
}
