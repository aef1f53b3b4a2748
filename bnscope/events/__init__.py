"""TensorBoard event files, both directions, without TensorFlow.

TFRecord framing (`tfrecord`), the writer (`writer`), the wire-format fast
path the reader decodes scalars with (`decoding`), the Custom Scalars layout
(`custom_scalars`) and Text-dashboard markdown (`markdown`).
"""

__all__: list[str] = []
