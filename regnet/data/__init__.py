"""Video/audio ingest, log-mel, optical flow, visual backbones, manifests, feature cache, synth."""
