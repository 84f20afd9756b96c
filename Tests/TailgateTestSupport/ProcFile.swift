import Glibc

/// Files under /proc, read whole.
public enum ProcFile {
    /// The whole of a /proc file, nil if it cannot be opened. (Foundation's String(contentsOfFile:) stops
    /// after the first read, one page, of a file whose size reads as 0, and /proc/net/tcp is longer than
    /// that while other tests run.)
    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
