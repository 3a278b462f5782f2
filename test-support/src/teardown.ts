/** What the helpers need of a tap test: somewhere to put the clean-up. */
export interface Teardown { teardown: (fn: () => unknown) => void }
