#!/usr/bin/env bash
# ActiveMQ 5.17 from Debian (5.17.2 on bookworm) and a private home at
# $MQTT_HARNESS_CACHE/activemq/home. Idempotent.
#
# Debian's activemq package lacks the jars its MQTT transport needs at run
# time (org.fusesource.mqtt.codec, hawtdispatch): they are in
# libmqtt-client-java. The home links bin/activemq.jar, every jar of the
# package's lib/ and lib/optional (resolved: Debian's are symlinks) and those
# three into one lib/.
TARGET_NAME=activemq
. "$(dirname "$0")/../lib.sh"

if [ ! -f /usr/share/activemq/bin/activemq.jar ] || [ ! -f /usr/share/java/mqtt-client.jar ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends activemq libmqtt-client-java
fi
for f in /usr/share/activemq/bin/activemq.jar /usr/share/java/mqtt-client.jar \
         /usr/share/java/hawtdispatch.jar /usr/share/java/hawtdispatch-transport.jar; do
  [ -f "$f" ] || die "$f is missing after apt-get install activemq libmqtt-client-java"
done
command -v java > /dev/null || die "java is missing (the activemq package depends on a JRE)"

home=$(cache_dir)/home
rm -rf "$home"
mkdir -p "$home/bin" "$home/lib" "$home/conf"
ln -s "$(readlink -f /usr/share/activemq/bin/activemq.jar)" "$home/bin/activemq.jar"
for jar in /usr/share/activemq/lib/*.jar /usr/share/activemq/lib/optional/*.jar \
           /usr/share/java/mqtt-client.jar /usr/share/java/hawtdispatch.jar \
           /usr/share/java/hawtdispatch-transport.jar; do
  ln -sf "$(readlink -f "$jar")" "$home/lib/$(basename "$jar")"
done
# Debian's ActiveMQ logs through log4j 1.2: to stdout, which start.sh keeps.
cat > "$home/conf/log4j.properties" <<'LOG'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d %-5p %c{1} - %m%n
LOG
note "installed: $(dpkg-query -W -f '${Package} ${Version}' activemq); home $home"
