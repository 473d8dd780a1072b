"""An RTSP camera for the tests: GStreamer's RTSP server (gst-rtsp-server) on 127.0.0.1.

Serves a live 320x240, 10 fps test pattern as RTP/JPEG (the payload most IP cameras offer beside
H.264) at ``rtsp://127.0.0.1:PORT/camera``: a moving ball, or with ``still`` the same picture in
every frame (a frozen camera). Runs under the system Python, which has the GObject
bindings (Debian: python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good):

    /usr/bin/python3 test/rtsp_server.py PORT [still]

Prints ``ready`` once it listens; stops on SIGTERM.
"""
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port = sys.argv[1]
    pattern = 'smpte100' if sys.argv[2:] == ['still'] else 'ball'
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( videotestsrc is-live=true pattern={pattern} ! video/x-raw,format=I420,width=320,height=240,'
        'framerate=10/1 ! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )')
    factory.set_shared(True)
    server.get_mount_points().add_factory('/camera', factory)
    if server.attach(None) == 0:
        sys.exit(f'cannot listen on 127.0.0.1:{port}')
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print('ready', flush=True)
    loop.run()


if __name__ == '__main__':
    main()
