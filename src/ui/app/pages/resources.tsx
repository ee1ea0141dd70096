/** @module placeholder */
export function ResourcesPage(_props: { selected?: string }) {
  return <p class="empty">Not yet.</p>;
}
