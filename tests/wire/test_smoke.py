from livemesh import wire


def test_audio_round_trip() -> None:
    msg = wire.ClientMessage(realtime_input=wire.RealtimeInput(audio=wire.Blob(b"\x00\x01", "audio/pcm")))
    assert wire.decode_client(wire.encode_client(msg)) == msg
