#if canImport(Glibc)
import Glibc
#endif

/// Gives back the pages of tailgate's own executable that only starting up needed.
///
/// Argument parsing, TOML and config validation, service setup: most of the code a start runs is never
/// run again while serving (a reload brings the config code back). Once the agent is ready it asks the
/// kernel to reclaim the read-only, file-backed pages of its executable (MADV_PAGEOUT, Linux ≥ 5.4);
/// whatever serving uses faults back in from the page cache or the file. On a 1 GB VM that is ~5 MiB.
/// Older kernels answer EINVAL and nothing changes.
enum StartupPages {
    private static let pageOut: CInt = 21  // MADV_PAGEOUT

    static func release() {
        guard let maps = readMaps() else { return }
        var executable: String?
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1].hasPrefix("r"), !fields[1].contains("w") else { continue }
            let path = String(fields[5])
            if executable == nil { executable = path }  // the first mapping is the executable's
            guard path == executable else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else { continue }
            _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), pageOut)
        }
    }

    private static func readMaps() -> String? {
        let descriptor = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
