import NIOCore
import TailgateTestSupport
import Testing

@testable import TailgateWire

/// Thousands of deterministic random mutations of real inputs: the parsers must never trap,
/// and must agree with themselves on every prefix.
@Suite struct WireMutationTests {
    static let iterations = 1_500

    /// Changes `bytes` in one random way: a byte replaced, nudged by one (as in a length), removed
    /// or inserted, a range duplicated, or the end cut off.
    static func mutate(_ bytes: inout [UInt8], using random: inout TestRandom) {
        guard !bytes.isEmpty else {
            bytes.append(UInt8.random(in: 0...255, using: &random))
            return
        }
        let index = Int.random(in: bytes.indices, using: &random)
        switch Int.random(in: 0..<6, using: &random) {
        case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
        case 1: bytes[index] &+= Bool.random(using: &random) ? 1 : 255
        case 2: bytes.remove(at: index)
        case 3: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
        case 4: bytes.insert(contentsOf: bytes[index..<min(index + 8, bytes.count)], at: index)
        default: bytes.removeSubrange(index...)
        }
    }

    static func mutations(of original: [UInt8], seed: UInt64) -> [[UInt8]] {
        var random = TestRandom(seed: seed)
        return (0..<Self.iterations).map { _ in
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                Self.mutate(&bytes, using: &random)
            }
            return bytes
        }
    }

    @Test(arguments: Capture.all.indices)
    func mutatedClientHellosNeverTrapAndPrefixesAgree(index: Int) throws {
        let capture = Capture.all[index]
        let sniffer = ClientHelloSniffer(maxBytes: 4_096)
        var random = TestRandom(seed: UInt64(index) + 1_000)
        var outcomes: [String: Int] = [:]
        for bytes in Self.mutations(of: try capture.bytes(), seed: UInt64(index)) {
            let prefixLength = Int.random(in: 0...bytes.count, using: &random)
            let prefix = ByteBuffer(bytes: bytes[..<prefixLength])
            do throws(ClientHelloError) {
                if let info = try sniffer.sniff(ByteBuffer(bytes: bytes)) {
                    outcomes["found", default: 0] += 1
                    #expect(info.byteCount <= bytes.count && info.byteCount <= sniffer.maxBytes)
                    // A prefix is complete only if it holds all the records.
                    let prefixInfo = try sniffer.sniff(prefix)
                    #expect(prefixInfo == (prefixLength >= info.byteCount ? info : nil))
                } else {
                    outcomes["incomplete", default: 0] += 1
                    #expect(try sniffer.sniff(prefix) == nil)
                }
            } catch {
                outcomes[error.rawValue, default: 0] += 1
                do throws(ClientHelloError) {
                    #expect(try sniffer.sniff(prefix) == nil)
                } catch let prefixError {
                    #expect(prefixError == error)
                }
            }
        }
        // The mutations reach deep enough to hit several kinds of rejection.
        #expect(outcomes.count >= 5, "\(outcomes)")
    }

    @Test(arguments: [
        "haproxy-v1-tcp4.bin", "haproxy-v1-tcp6.bin",
        "haproxy-v2-tcp4-authority-crc32c.bin", "haproxy-v2-tcp6-authority-crc32c.bin",
    ])
    func mutatedProxyHeadersNeverTrapAndPrefixesAgree(file: String) throws {
        let decoder = ProxyHeaderDecoder(maxV2Length: 200)
        var random = TestRandom(seed: UInt64(file.utf8.count))
        var outcomes: [String: Int] = [:]
        for bytes in Self.mutations(of: try Capture.bytes(named: file), seed: UInt64(file.utf8.count) << 8) {
            let prefixLength = Int.random(in: 0...bytes.count, using: &random)
            var prefix = ByteBuffer(bytes: bytes[..<prefixLength])
            var buffer = ByteBuffer(bytes: bytes)
            do throws(ProxyHeaderError) {
                if let header = try decoder.decode(&buffer) {
                    outcomes["found", default: 0] += 1
                    let length = buffer.readerIndex
                    #expect(length > 0 && length <= bytes.count)
                    let prefixHeader = try decoder.decode(&prefix)
                    #expect(prefixHeader == (prefixLength >= length ? header : nil))
                } else {
                    outcomes["incomplete", default: 0] += 1
                    #expect(buffer.readerIndex == 0)
                    #expect(try decoder.decode(&prefix) == nil)
                }
            } catch {
                outcomes[error.rawValue, default: 0] += 1
                #expect(buffer.readerIndex == 0)
                do throws(ProxyHeaderError) {
                    #expect(try decoder.decode(&prefix) == nil)
                } catch let prefixError {
                    #expect(prefixError == error)
                }
            }
        }
        #expect(outcomes.count >= 4, "\(outcomes)")
    }
}
