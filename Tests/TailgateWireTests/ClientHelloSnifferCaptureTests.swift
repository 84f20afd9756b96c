import NIOCore
import Testing

@testable import TailgateWire

@Suite struct ClientHelloSnifferCaptureTests {
    let sniffer = ClientHelloSniffer()

    @Test(arguments: Capture.all)
    func capturedClientHelloYieldsItsServerNameAndALPN(capture: Capture) throws {
        let bytes = try capture.bytes()
        #expect(bytes.count == capture.expected.byteCount)
        #expect(try self.sniffer.sniff(ByteBuffer(bytes: bytes)) == capture.expected.info)
    }

    @Test(arguments: Capture.all)
    func everyProperPrefixOfACaptureNeedsMoreBytes(capture: Capture) throws {
        let bytes = try capture.bytes()
        for length in 0..<bytes.count {
            let prefix = ByteBuffer(bytes: bytes[..<length])
            #expect(try self.sniffer.sniff(prefix) == nil, "prefix of \(length) bytes")
        }
    }

    @Test(arguments: Capture.all)
    func captureSplitAtEveryPointIntoTwoSegmentsYieldsTheSameInfo(capture: Capture) throws {
        let bytes = try capture.bytes()
        for split in 0...bytes.count {
            var buffer = ByteBuffer(bytes: bytes[..<split])
            #expect(try split == bytes.count || self.sniffer.sniff(buffer) == nil)
            buffer.writeBytes(bytes[split...])
            #expect(try self.sniffer.sniff(buffer) == capture.expected.info, "split at \(split)")
        }
    }

    @Test(arguments: Capture.all)
    func captureFedByteByByteIsRecognisedWithItsLastByte(capture: Capture) throws {
        let bytes = try capture.bytes()
        var buffer = ByteBuffer()
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            let info = try self.sniffer.sniff(buffer)
            if index == bytes.count - 1 {
                #expect(info == capture.expected.info)
            } else {
                #expect(info == nil, "after \(index + 1) bytes")
            }
        }
    }

    @Test(arguments: Capture.all)
    func sniffingLeavesTheReaderIndexAndBytesUntouched(capture: Capture) throws {
        let bytes = try capture.bytes()
        // Bytes already consumed before the ClientHello must not matter.
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF] + bytes)
        buffer.moveReaderIndex(forwardBy: 3)
        let before = buffer
        #expect(try self.sniffer.sniff(buffer) == capture.expected.info)
        #expect(buffer == before)
        #expect(buffer.readerIndex == 3)
    }

    @Test(arguments: Capture.all)
    func bytesAfterTheClientHelloRecordsAreNotCounted(capture: Capture) throws {
        let bytes = try capture.bytes()
        // A ChangeCipherSpec and early data may follow the ClientHello.
        let after = ClientHelloBuilder.record([0x01], type: 20) + ClientHelloBuilder.record([1, 2, 3], type: 23)
        #expect(try self.sniffer.sniff(ByteBuffer(bytes: bytes + after)) == capture.expected.info)
    }

    @Test func chromiumClientHelloCarriesAPostQuantumKeyShareLargerThanATypicalSegment() throws {
        let capture = try #require(Capture.all.first { $0.file == "chromium-mlkem.bin" })
        let bytes = try capture.bytes()
        #expect(bytes.count > 1_500)
        // X25519MLKEM768 is group 0x11EC with a 1216-byte key share (draft-ietf-tls-ecdhe-mlkem).
        let keyShareEntry: [UInt8] = [0x11, 0xEC, 0x04, 0xC0]
        #expect(bytes.indices.contains { bytes[$0...].starts(with: keyShareEntry) })
    }

    @Test func captureReframedIntoSmallRecordsYieldsTheSameServerNameAndALPN() throws {
        let bytes = try #require(Capture.all.first { $0.file == "curl.bin" }).bytes()
        let handshake = Array(bytes[5...])
        for fragmentLength in [1, 2, 3, 7, 64, 100, 511] {
            let framed = ClientHelloBuilder.frame(handshake, fragmentLength: fragmentLength)
            let info = try self.sniffer.sniff(ByteBuffer(bytes: framed))
            #expect(info?.serverName == "www.example.test")
            #expect(info?.alpn == ["h2", "http/1.1"])
            #expect(info?.byteCount == framed.count)
        }
    }

    @Test func clientHelloLargerThanMaxBytesIsTooLargeButFitsAGreaterLimit() throws {
        let bytes = try #require(Capture.all.first { $0.file == "chromium-mlkem.bin" }).bytes()
        #expect(throws: ClientHelloError.tooLarge) {
            try ClientHelloSniffer(maxBytes: 2_018).sniff(ByteBuffer(bytes: bytes))
        }
        #expect(try ClientHelloSniffer(maxBytes: 2_019).sniff(ByteBuffer(bytes: bytes))?.byteCount == 2_019)
    }
}
