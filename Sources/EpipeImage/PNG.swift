import Foundation
import CPNG
import EpipeKernels

/// 8-bit PNG via libpng's simplified API (no setjmp). Writes are atomic (temp file + rename).
public enum PNG {
    public static func writeGray(path: String, width: Int, height: Int, pixels: [UInt8]) throws {
        try write(path: path, width: width, height: height, channels: 1, pixels: pixels)
    }

    /// Interleaved RGB.
    public static func writeRGB(path: String, width: Int, height: Int, pixels: [UInt8]) throws {
        try write(path: path, width: width, height: height, channels: 3, pixels: pixels)
    }

    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    static func write(path: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        func fail(_ m: String) -> ImageError { ImageError(path: path, message: m, isBadInput: false) }
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else {
            throw fail("cannot write a PNG of \(width) x \(height) pixels; width and height must be positive")
        }
        guard pixels.count == width * height * channels else {
            throw fail("PNG needs \(width * height * channels) bytes (\(width) x \(height) x \(channels)) but got \(pixels.count); pass one byte per sample")
        }
        let url = URL(fileURLWithPath: path)
        let tmp = TempFiles.name(for: url.deletingLastPathComponent().path + "/" + url.lastPathComponent)
        TempFiles.created(tmp)
        defer { TempFiles.finished(tmp) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let ok = pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&image, tmp, 0, buf.baseAddress, Int32(width * channels), nil)
        }
        if ok == 0 {
            let m = message(&image)
            png_image_free(&image)
            unlink(tmp)
            throw fail("cannot write PNG (libpng: \(m)); check that the folder exists and is writable")
        }
        png_image_free(&image)
        // fsync the temp file, then rename into place
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        Fault.point("temp-written")
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw fail("cannot rename PNG into place (\(e)); check permissions of the folder")
        }
        Fault.point("renamed")
    }

    /// Reads an 8-bit PNG as gray (1 channel) or RGB (3 channels; alpha dropped).
    public static func read(path: String) throws -> (width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        func fail(_ m: String) -> ImageError { ImageError(path: path, message: m) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            let m = message(&image)
            png_image_free(&image)
            throw fail("cannot read PNG (libpng: \(m)); check the path or re-create the file")
        }
        let color = (image.format & UInt32(PNG_FORMAT_FLAG_COLOR)) != 0
        let channels = color ? 3 : 1
        image.format = color ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        let w = Int(image.width), h = Int(image.height)
        guard w > 0, h > 0, w * h <= 1 << 30 else {
            png_image_free(&image)
            throw fail("PNG claims \(w) x \(h) pixels; the file is corrupt or too large")
        }
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        let ok = pixels.withUnsafeMutableBytes { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, Int32(w * channels), nil)
        }
        if ok == 0 {
            let m = message(&image)
            png_image_free(&image)
            throw fail("cannot decode PNG (libpng: \(m)); the file is truncated or corrupt")
        }
        png_image_free(&image)
        return (w, h, channels, pixels)
    }
}
