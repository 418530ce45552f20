# Sourced by ./pcache and ./test: selects a JDK 25 and exports JAVA_HOME.
# Order: $JAVA_HOME when it is a JDK 25+, then the system JVM directory.
pcache_java_feature() {
    "$1/bin/java" -XshowSettings:properties -version 2>&1 |
        sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p'
}

pcache_select_jdk() {
    local candidate feature
    for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25* /usr/lib/jvm/*-25-* /usr/lib/jvm/*25*; do
        [ -n "$candidate" ] && [ -x "$candidate/bin/java" ] || continue
        feature=$(pcache_java_feature "$candidate")
        if [ -n "$feature" ] && [ "$feature" -ge 25 ]; then
            export JAVA_HOME="$candidate"
            export PATH="$JAVA_HOME/bin:$PATH"
            # Maven 3.8.7 bundles a Guava that warns about sun.misc.Unsafe on JDK 25.
            export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
            return 0
        fi
    done
    echo "pcache: no JDK 25 found (looked at \$JAVA_HOME and /usr/lib/jvm/*25*); install Temurin 25 or set JAVA_HOME" >&2
    return 1
}
