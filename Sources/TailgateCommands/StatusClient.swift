import Glibc
import NIOCore
import TailgateAgent
import TailgateConfig
import TailgateSystem

/// `tailgate status`: fetches the endpoint's /status as a table, over a plain blocking socket.
public enum StatusClient {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The endpoint's base URL from a configuration's `[health] listen` (its first address; a wildcard is
    /// asked on loopback).
    ///
    /// Only that key is read, so a file with errors elsewhere (being edited while the agent serves the last
    /// good one) still says where the endpoint is; without it, the file's errors say why.
    public static func base(configPath: String) throws(Failure) -> String {
        guard let bytes = try? ConfigurationFile.readAll(configPath), let address = ConfigurationLoader.healthAddress(bytes: bytes),
              let port = address.port, let ip = address.ipAddress else {
            do {
                _ = try ConfigurationFile.load(path: configPath)
            } catch {
                throw Failure(description: error.description)
            }
            throw Failure(description: "\(configPath) has no [health] listen; tailgate status asks the health endpoint")
        }
        switch ip {
        case "0.0.0.0": return "http://127.0.0.1:\(port)"
        case "::": return "http://[::1]:\(port)"
        default:
            if case .v6 = address { return "http://[\(ip)]:\(port)" }
            return "http://\(ip):\(port)"
        }
    }

    /// `base` is like "http://127.0.0.1:9180", or just "127.0.0.1:9180"; returns the body of GET /status?format=text,
    /// or of GET /status (the JSON form) with `json`.
    public static func fetchText(base given: String, json: Bool = false) throws(Failure) -> String {
        let response: PlainHTTPGet.Response
        let url: String
        do throws(PlainHTTPGet.Failure) {
            let endpoint = try PlainHTTPGet.Endpoint(given)
            url = "http://\(endpoint.authority)"
            // The whole answer within 10 s and 4 MiB: whatever else listens on that port must not hold the command.
            response = try PlainHTTPGet.get(endpoint, path: json ? "/status" : "/status?format=text", connectWithin: .seconds(5),
                                           answerWithin: .seconds(10), limit: 4 << 20)
        } catch {
            let hint = error.description.hasPrefix("cannot reach") ? " (is [health] listen set, and tailgate running?)" : ""
            throw Failure(description: error.description + hint)
        }
        guard response.status == 200 else {
            throw Failure(description: "\(url)/status: HTTP \(response.status)")
        }
        let body = String(decoding: response.body, as: UTF8.self)
        guard json ? body.hasPrefix("{") && body.contains("\"generation\"") : body.hasPrefix("tailgate ") else {
            throw Failure(description: "\(url): answered, but not as tailgate's health endpoint does (is [health] listen this address?)")
        }
        return body
    }
}
