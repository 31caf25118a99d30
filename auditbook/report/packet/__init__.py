"""The audit packet: notebooks executed per criterion, offline HTML, manifest, signature, verification."""
