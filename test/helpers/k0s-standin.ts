import { recordingScript } from './fixture-root.js';

/**
 * Stands in for the k0s binary, which cannot act on a cluster here. It records argv (the test
 * asserts it) and does what k0s does to the node's files: `install worker` writes the service
 * file (systemd or OpenRC), `start` marks it started, `status` answers from that mark.
 */
export function k0sStandIn(version = 'v1.34.1+k0s.0'): string {
  return recordingScript(`
case "$1" in
  version) echo "${version}" ;;
  install)
    if [ -x /sbin/openrc ]; then mkdir -p /etc/init.d; printf '#!/sbin/openrc-run\\ncommand=/usr/local/bin/k0s\\ncommand_args="worker $*"\\n' > /etc/init.d/k0sworker
    else mkdir -p /etc/systemd/system; printf '[Service]\\nExecStart=/usr/local/bin/k0s worker\\n' > /etc/systemd/system/k0sworker.service; fi ;;
  start) mkdir -p /run/k0s; touch /run/k0s/standin-started ;;
  status)
    if [ -e /run/k0s/standin-started ]; then printf 'Version: ${version}\\nProcess ID: 4242\\nRole: worker\\nWorkloads: true\\n'
    else echo 'Error: cannot connect to /run/k0s/status.sock' >&2; exit 1; fi ;;
esac
`);
}
