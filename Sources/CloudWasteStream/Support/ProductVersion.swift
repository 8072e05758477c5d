/// This build's version: the SPEC version it implements, with a patch number of its own.
public enum ProductVersion {
    public static let current = "1.2.0"
}
