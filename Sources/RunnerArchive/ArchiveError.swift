import CLibArchive

/// libarchive's version string, e.g. "libarchive 3.6.2 zlib/1.2.13 ...".
public var libarchiveVersion: String { String(cString: archive_version_details()) }
