import Foundation
import EpipeCore
import EpipeImage

/// A side image (a flat-field, a dark-field, a mask) that must have the image's width and height.
public func sideImage(_ path: String, what: String, width w: Int, height h: Int) throws -> ImageReader {
    let r = try ImageReader(path: path)
    guard r.info.width == w, r.info.height == h else { throw EpipeError.badInput("\(path): \(what) is \(r.info.width)x\(r.info.height), the image is \(w)x\(h)") }
    return r
}
