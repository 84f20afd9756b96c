/// The version reported by `tailgate --version` and in /status.
public enum TailgateVersion {
    public static let current = "0.1.0"
}
