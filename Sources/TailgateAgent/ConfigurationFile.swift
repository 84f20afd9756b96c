import TailgateConfig

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a config file from disk and loads it; every failure becomes `ConfigurationErrors`.
public enum ConfigurationFile {
    /// Largest config file accepted (a 1,000-route file is well under 100 KiB).
    static let maximumSize = 16 * 1_024 * 1_024

    public static func load(path: String) throws(ConfigurationErrors) -> (TailgateConfiguration, bytes: [UInt8]) {
        let bytes: [UInt8]
        do {
            bytes = try readAll(path)
        } catch {
            throw ConfigurationErrors([ConfigurationError(file: path, position: .init(line: 1, column: 1), keyPath: "", message: error.description)])
        }
        return (try ConfigurationLoader.load(bytes: bytes, file: path, readListFile: listFileReader(beside: path)), bytes)
    }

    /// Reads list files (`[lists] NAME = { file = … }`) relative to the configuration's directory, with the
    /// configuration's own rules (size, no world-writable file): a deny list anyone could empty is no list.
    static func listFileReader(beside configPath: String) -> ListFileReader {
        let directory = configPath.contains("/") ? String(configPath[..<configPath.lastIndex(of: "/")!]) : "."
        return { name in
            let path = name.hasPrefix("/") ? name : "\(directory)/\(name)"
            do throws(ReadError) {
                return .success((try readAll(path), path))
            } catch {
                return .failure(ListFileError(error.description))
            }
        }
    }

    public struct ReadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// The file's bytes, up to `maximumSize`.
    public static func readAll(_ path: String) throws(ReadError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ReadError(description: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw ReadError(description: "cannot stat: \(String(cString: strerror(errno)))") }
        // A regular file, or a pipe (`--config /dev/stdin < file`, `… | tailgate check --config /dev/stdin`).
        switch info.st_mode & S_IFMT {
        case S_IFREG, S_IFIFO: break
        case S_IFDIR: throw ReadError(description: "is a directory, not a configuration file")
        case S_IFCHR, S_IFBLK: throw ReadError(description: "is a device, not a configuration file")
        default: throw ReadError(description: "is not a regular file")
        }
        // Anyone could rewrite routes or open the firewall through a world-writable file.
        guard info.st_mode & S_IWOTH == 0 else {
            throw ReadError(description: "refusing a world-writable configuration file (run: chmod o-w \(path))")
        }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: "cannot read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
            guard result.count <= maximumSize else { throw ReadError(description: "file is larger than \(maximumSize) bytes") }
        }
        return result
    }
}
