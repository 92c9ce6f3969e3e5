"""Store encoding as an Apache Beam pipeline (optional extra: `pip install tfcomp[beam]`).

    beam.Create([(split, shard), ...]) | beam.ParDo(EncodeShard(...))

Each element is one shard of one split; `EncodeShard` loads the codec once per worker (in
`setup`) and runs `store.encode_shard`, which reads and decodes only that shard's examples,
compresses them in batches, writes the shard atomically with its receipt and skips a shard that
is already done, so a killed pipeline resumes where it stopped. The manifest is written once,
by the launching program, when every shard is done. The shards are byte-identical to the plain
loop's (`store.encode_split`).

Runners (Python SDK): DirectRunner (default, this machine); Dataflow
(`--runner=DataflowRunner --project=P --region=R --temp_location=gs://...
--sdk_container_image=IMAGE`, the image holding TensorFlow and tfcomp); Flink and Spark through
the portable runner (`--runner=FlinkRunner --flink_master=HOST:8081 --environment_type=DOCKER
--environment_config=IMAGE`, likewise `SparkRunner --spark_master_url=...`). The store folder
must be reachable by every worker (a shared file system, or gs:// through TensorFlow's file
system on Dataflow).
"""

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from tfcomp.data import store


class EncodeShard(beam.DoFn):
    """Encodes (split, shard index) elements; yields (shard name, 'kept' | 'written')."""

    def __init__(self, codec_path, dataset, store_dir, num_shards, resize, batch_size, source):
        self.codec_path, self.dataset, self.store_dir = codec_path, dataset, store_dir
        self.num_shards, self.resize, self.batch_size = num_shards, resize, batch_size
        self.source = source  # tfds_data_dir, manual_dir, limit

    def setup(self):
        from tfcomp.codec.files import CodecFiles
        from tfcomp.eval.models import load_codec

        self.files = CodecFiles(load_codec(self.codec_path))
        self.listings = {}

    def process(self, element):
        split, index = element
        if split not in self.listings:
            self.listings[split] = store.list_split(self.dataset, split, **self.source)
        yield store.encode_shard(
            self.files,
            self.listings[split],
            self.store_dir,
            index,
            self.num_shards,
            resize=self.resize,
            batch_size=self.batch_size,
        )


def encode(codec_path, dataset, store_dir, *, splits, num_shards, resize, batch_size,
           tfds_data_dir=None, manual_dir=None, limit=None, runner="DirectRunner",
           pipeline_args=()):  # fmt: skip
    """Runs the pipeline over every shard of `splits`; returns the manifest (None if a shard is
    missing at the end)."""
    source = dict(tfds_data_dir=tfds_data_dir, manual_dir=manual_dir, limit=limit)
    elements = [(split, i) for split in splits for i in range(num_shards)]
    options = PipelineOptions([f"--runner={runner}", *pipeline_args])
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "shards" >> beam.Create(elements)
            | "encode"
            >> beam.ParDo(
                EncodeShard(codec_path, dataset, store_dir, num_shards, resize, batch_size, source)
            )
        )
    return store.write_manifest(store_dir, dataset, list(splits), num_shards)
