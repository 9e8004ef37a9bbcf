"""A web page for a trained model: colorize your photos, and the paper's visual Turing test
(the application: web/app.py; its pages: web/templates/ and web/static/).

    python serve.py [--checkpoint checkpoints/cifar10_gan] [--host 127.0.0.1] [--port 8000]

Without --checkpoint it serves the shipped photo model (pretrained/photo/). It listens on
127.0.0.1 unless --host says otherwise.
"""
import sys

from util.quiet import quiet_tensorflow
from util.script import start_script

if __name__ == "__main__":
    start_script()
    quiet_tensorflow()  # before TensorFlow's first import

from models import checkpoint as ckpt  # noqa: E402
from options import (Parser, add_checkpoint, add_max_megapixels, add_mixed_precision, add_weights,  # noqa: E402
                     shipped_model_unless)
from web.app import create_app  # noqa: E402


def parse_options(argv=None):
    p = Parser(description="Colorize photos in a web page, and run the visual Turing test.")
    add_checkpoint(p, shipped=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-megabytes", type=float, default=25.0, help="largest upload accepted")
    add_max_megapixels(p)
    p.add_argument("--turing-images", type=int, default=40, help="images in the Turing test (half colorized)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Turing test's images and order")
    p.add_argument("--dataset-path", help="the Turing test's dataset, where it is not where the model was trained "
                                          "(the shipped model: your copy of Imagenette, with its val/ folder)")
    add_mixed_precision(p)
    add_weights(p)
    opt = p.parse_args(argv)
    opt.checkpoint = shipped_model_unless(opt.checkpoint, p)
    if not 0 < opt.port < 65536:
        p.error("--port must be between 1 and 65535")
    if not (opt.max_megabytes > 0 and opt.max_megapixels > 0 and opt.turing_images >= 2):
        p.error("--max-megabytes and --max-megapixels must be positive, --turing-images at least 2")
    return opt


def main(argv=None):
    opt = parse_options(argv)
    try:
        app = create_app(opt.checkpoint, opt.max_megabytes * 1e6, opt.max_megapixels * 1e6, opt.turing_images,
                         opt.seed, opt.mixed_precision, opt.weights, opt.dataset_path)
    except ckpt.CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import uvicorn
    print(f"Serving on http://{opt.host}:{opt.port}/ (Turing test: /turing); Ctrl-C stops")
    uvicorn.run(app, host=opt.host, port=opt.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
