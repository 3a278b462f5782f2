import { context, metrics, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

/** A reader that exports nothing: a test calls `collect()` when it wants the numbers. */
class CollectingReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

export interface OtelSdk {
  readonly tracerProvider: BasicTracerProvider
  readonly meterProvider: MeterProvider
  /** Every span ended so far, oldest first. */
  readonly spans: () => ReadableSpan[]
  /** The metrics as the SDK collects them now, by instrument name. */
  readonly collect: () => Promise<Map<string, MetricData>>
  readonly reset: () => void
}

/**
 * The OpenTelemetry SDK, registered globally as an application registers it (an AsyncLocalStorage context manager,
 * a tracer provider with an in-memory exporter, a meter provider), until `stop()`. One per test file: the API's
 * globals can be set once until they are disabled.
 */
export function startOtelSdk (t: { teardown: (fn: () => unknown) => void }): OtelSdk {
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const reader = new CollectingReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
  t.teardown(async () => {
    trace.disable()
    metrics.disable()
    context.disable()
    await tracerProvider.shutdown()
    await meterProvider.shutdown()
  })
  return {
    tracerProvider,
    meterProvider,
    spans: () => exporter.getFinishedSpans(),
    collect: async () => {
      const { resourceMetrics } = await reader.collect()
      return new Map(resourceMetrics.scopeMetrics.flatMap(scope => scope.metrics).map(metric => [metric.descriptor.name, metric]))
    },
    reset: () => { exporter.reset() }
  }
}
