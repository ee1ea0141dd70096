/** @module placeholder */
export function GraphPage(_props: { selected?: string }) {
  return <p class="empty">Not yet.</p>;
}
